#!/usr/bin/env python3
"""Checks an swx evidence bundle with the Python standard library alone: every record's hash-chain link,
its Merkle proof into its block, each block root's proof into a time-stamped root, and the message bytes.
The time-stamps themselves are checked with `openssl ts -verify` (see VERIFY.md). Run it in the bundle folder."""
import base64
import hashlib
import json
import re
import sys

# The columns a record hash covers, in order: SHA-256 of prev_hash followed by their JSON (as JavaScript writes it).
COLUMNS = ['stream', 'seq', 'chain', 'id', 'message_id', 'conversation_id', 'stage', 'at', 'from_partner', 'to_partner',
           'service', 'action', 'protocol', 'code', 'detail', 'size', 'sha256', 'raw', 'raw_ref', 'signature', 'node', 'prev_hash']


def sha256(data):
    return hashlib.sha256(data).digest()


# A proof is `index/size:` then each sibling hash, leaf level first, as 43 characters of base64url without padding
# (the last character carries 2 bits, both zero); proofs archived earlier wrote them as hex separated by commas.
PROOF = re.compile(r'([0-9]{1,15})/([0-9]{1,15}):((?:[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048])*)')
HEX_PROOF = re.compile(r'([0-9]{1,15})/([0-9]{1,15}):((?:[0-9a-f]{64})(?:,[0-9a-f]{64})*)?')


def audit_path(proof):
    """(index, size, sibling hashes) of a proof, or None when the text is not one."""
    match = PROOF.fullmatch(proof)
    if match:
        nodes = match[3]
        return int(match[1]), int(match[2]), [base64.urlsafe_b64decode(nodes[at:at + 43] + '=') for at in range(0, len(nodes), 43)]
    match = HEX_PROOF.fullmatch(proof)
    if match:
        return int(match[1]), int(match[2]), [bytes.fromhex(h) for h in match[3].split(',')] if match[3] else []
    return None


def included(leaf, proof, root):
    """RFC 9162 2.1.3.2: a leaf at index of a size-leaf tree hashes up to root along the audit path."""
    parsed = audit_path(proof)
    if parsed is None:
        return False
    index, size, nodes = parsed
    if not 0 <= index < size:
        return False
    position, last, running = index, size - 1, sha256(b'\x00' + leaf)
    for node in nodes:
        if last == 0:
            return False
        if position % 2 == 1 or position == last:
            running = sha256(b'\x01' + node + running)
            while position % 2 == 0 and position != 0:
                position //= 2
                last //= 2
        else:
            running = sha256(b'\x01' + running + node)
        position //= 2
        last //= 2
    return last == 0 and running == root


def main():
    failures = 0

    def check(ok, what):
        nonlocal failures
        print(('ok    ' if ok else 'FAIL  ') + what)
        failures += 0 if ok else 1

    records = [json.loads(line) for line in open('records.jsonl', encoding='utf-8') if line.strip()]
    blocks = {b['block_id']: b for b in (json.loads(line) for line in open('blocks.jsonl', encoding='utf-8') if line.strip())}
    for r in records:
        ordered = {c: r[c] for c in COLUMNS}
        text = r['prev_hash'] + json.dumps(ordered, separators=(',', ':'), ensure_ascii=False)
        check(hashlib.sha256(text.encode('utf-8')).hexdigest() == r['record_hash'], f"record {r['id']} ({r['stage']}): hash {r['record_hash'][:16]}…")
        block = blocks.get(r['batch_id'])
        if block is None:
            check(False, f"record {r['id']}: block {r['batch_id']} is not in blocks.jsonl")
            continue
        # The root alone does not fix a proof's size (RFC 9162), so the record's place is also checked against its block.
        place = f"{int(r['chain']) - int(block['first_chain'])}/{int(block['records'])}:"
        check(r['proof'].startswith(place) and included(bytes.fromhex(r['record_hash']), r['proof'], bytes.fromhex(block['root'])),
              f"record {r['id']}: at {place[:-1]} in block {r['batch_id']}")
    for block in blocks.values():
        if not block.get('stamp_file'):
            check(False, f"block {block['block_id']}: not yet time-stamped")
            continue
        stamped_root = open(block['stamp_file'] + '.root', 'rb').read()
        check(stamped_root.hex() == block['stamp_root'], f"block {block['block_id']}: {block['stamp_file']}.root is the stamped root")
        check(included(bytes.fromhex(block['root']), block['stamp_proof'], stamped_root), f"block {block['block_id']}: in the root time-stamped at {block['gen_time']}")
    received = [r for r in records if r['stage'] == 'received' and r['sha256']]
    try:
        message = open('message.bin', 'rb').read()
        for r in received:
            check(hashlib.sha256(message).hexdigest() == r['sha256'], f"message.bin is the {r['size']} bytes received as {r['message_id']}")
    except FileNotFoundError:
        check(not received, 'message.bin is present')
    print(f"{failures} check(s) failed" if failures else 'all checks passed')
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
