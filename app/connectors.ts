// The protocols this build of the hub speaks: importing a connector's folder registers it (engine/connector.ts).
// Adding a protocol is its folder and one line here.
import '../connectors/mq/index.ts';
import '../connectors/rest/index.ts';
import '../connectors/sftp/index.ts';
import '../connectors/ws/index.ts';
import '../connectors/as4/index.ts';
import '../connectors/ebms2/index.ts';
