// The WSDL 1.1 (document/literal) of one dataset's query operation, with a SOAP 1.1 and a SOAP 1.2 binding.
import type { Dataset } from '../../engine/catalogue.ts';
import { jsonXmlNamespace, queryNamespace, soapAction } from './contract.ts';
import { escapeXml } from '../../engine/xml/text.ts';

const stringElement = (name: string, optional = false) => `<xsd:element name="${name}" type="xsd:string"${optional ? ' minOccurs="0"' : ''}/>`;

function binding(version: '11' | '12', action: string): string {
  const soap = `soap${version}`;
  return `<wsdl:binding name="QuerySoap${version}" type="q:QueryPortType">`
    + `<${soap}:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>`
    + `<wsdl:operation name="Query"><${soap}:operation soapAction="${action}" style="document"/>`
    + `<wsdl:input><${soap}:body use="literal"/></wsdl:input><wsdl:output><${soap}:body use="literal"/></wsdl:output>`
    + '</wsdl:operation></wsdl:binding>';
}

/** The WSDL for `dataset` served at `endpointUrl` (an absolute https URL the caller has checked). */
export function wsdlFor(dataset: Pick<Dataset, 'id' | 'name' | 'keys'>, endpointUrl: string): string {
  const action = soapAction(dataset.id);
  const location = escapeXml(endpointUrl, true);
  return `<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="${dataset.id}" targetNamespace="${queryNamespace}" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
 xmlns:soap11="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/"
 xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:q="${queryNamespace}">
<wsdl:documentation>${escapeXml(dataset.name)}: query ${dataset.id} by ${dataset.keys.join(', ')}</wsdl:documentation>
<wsdl:types><xsd:schema targetNamespace="${queryNamespace}" elementFormDefault="qualified">
<xsd:element name="Query"><xsd:complexType><xsd:sequence>${stringElement('provider', true)}${dataset.keys.map((key) => stringElement(key)).join('')}</xsd:sequence></xsd:complexType></xsd:element>
<xsd:element name="Answer"><xsd:complexType><xsd:sequence>${stringElement('queryId')}${stringElement('dataset')}${stringElement('provider')}<xsd:element name="found" type="xsd:boolean"/><xsd:element name="answeredAt" type="xsd:dateTime"/><xsd:element name="record" minOccurs="0"><xsd:complexType><xsd:sequence><xsd:any namespace="${jsonXmlNamespace}" processContents="lax"/></xsd:sequence></xsd:complexType></xsd:element></xsd:sequence></xsd:complexType></xsd:element>
</xsd:schema></wsdl:types>
<wsdl:message name="QueryRequest"><wsdl:part name="parameters" element="q:Query"/></wsdl:message>
<wsdl:message name="QueryResponse"><wsdl:part name="parameters" element="q:Answer"/></wsdl:message>
<wsdl:portType name="QueryPortType"><wsdl:operation name="Query"><wsdl:input message="q:QueryRequest"/><wsdl:output message="q:QueryResponse"/></wsdl:operation></wsdl:portType>
${binding('11', action)}
${binding('12', action)}
<wsdl:service name="${dataset.id}"><wsdl:port name="Soap11" binding="q:QuerySoap11"><soap11:address location="${location}"/></wsdl:port><wsdl:port name="Soap12" binding="q:QuerySoap12"><soap12:address location="${location}"/></wsdl:port></wsdl:service>
</wsdl:definitions>
`;
}
