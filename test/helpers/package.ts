// A payload package (several payloads of one message as one multipart/related payload) as Python's email module reads
// it, for the tests: an independent reader of what swx writes and delivers.
import { spawnSync } from 'node:child_process';

export interface PythonPart { contentId: string; mediaType: string; charset: string | null; properties: string | null; role: string | null; sha256: string }

/** The parts of a package of the given Content-Type, in order, each with its fields and the SHA-256 of its decoded body. */
export function pythonPackageParts(contentType: string, body: Buffer): { mediaType: string; start: string | null; parts: PythonPart[] } {
  const python = spawnSync('/usr/bin/python3', ['-c', `
import sys, json, hashlib
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import unquote
message = BytesParser(policy=HTTP).parsebytes(b'Content-Type: ' + sys.argv[1].encode() + b'\\r\\n\\r\\n' + sys.stdin.buffer.read())
parts = [{'contentId': part['Content-ID'].strip('<>'), 'mediaType': part.get_content_type(), 'charset': part.get_param('charset'),
          'properties': part['Part-Property'], 'role': unquote(part['Part-Role']) if part['Part-Role'] else None,
          'sha256': hashlib.sha256(part.get_payload(decode=True) or b'').hexdigest()} for part in message.iter_parts()]
print(json.dumps({'mediaType': message.get_content_type(), 'start': message.get_param('start'), 'parts': parts}))
`, contentType], { input: body, encoding: 'utf8' });
  if (python.status !== 0) throw new Error(`python3 could not read the package: ${python.stderr}`);
  return JSON.parse(python.stdout);
}

/** Part-Property as Python read it, decoded: name → value. */
export function propertiesOf(part: PythonPart): Record<string, string> {
  if (!part.properties) return {};
  return Object.fromEntries(part.properties.split(',').map((item) => item.split(';')[0]!.split('=').map((text) => decodeURIComponent(text.trim()))));
}
