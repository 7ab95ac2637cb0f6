#!/usr/bin/env python3
"""Checks an swx evidence bundle with the Python standard library alone: every record's hash-chain link,
its Merkle proof into its block, each block root's proof into a time-stamped root, and the message bytes.
The time-stamps themselves are checked with `openssl ts -verify` (see VERIFY.md). Run it in the bundle folder."""
import hashlib
import json
import sys

# The columns a record hash covers, in order: SHA-256 of prev_hash followed by their JSON (as JavaScript writes it).
COLUMNS = ['stream', 'seq', 'chain', 'id', 'message_id', 'conversation_id', 'stage', 'at', 'from_partner', 'to_partner',
           'service', 'action', 'protocol', 'code', 'detail', 'size', 'sha256', 'raw', 'raw_ref', 'signature', 'node', 'prev_hash']


def sha256(data):
    return hashlib.sha256(data).digest()


def included(leaf, proof, root):
    """RFC 9162 2.1.3.2: a leaf at index of a size-leaf tree hashes up to root along the audit path."""
    position_size, _, path = proof.partition(':')
    index, size = (int(n) for n in position_size.split('/'))
    nodes = [bytes.fromhex(h) for h in path.split(',')] if path else []
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
        check(included(bytes.fromhex(r['record_hash']), r['proof'], bytes.fromhex(block['root'])), f"record {r['id']}: in block {r['batch_id']}")
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
