#!/usr/bin/env python3
"""WAL frames per commit, by B-tree, of a copy of an SQLite database and its WAL.

Usage: scripts/wal_frames.py DB DB-wal

Copy both files while the writer is paused (e.g. `kill -STOP` the gateway
under load, `cp paywarden.db* snap/`, `kill -CONT`), then run this on the copy.
Each WAL frame header names the page it holds; `dbstat` names the table or
index owning that page. What a commit costs is mostly the frames it writes
(each one a 4 KiB write, its checksum, and its share of the `fdatasync`), so
this shows which table or index a layout change should target.
"""
import collections
import sqlite3
import struct
import sys


def main(db, wal):
    data = open(wal, "rb").read()
    if len(data) < 32:
        sys.exit("empty WAL: nothing committed since the last checkpoint reset it")
    _magic, _version, page_size, _ckpt, salt1, salt2 = struct.unpack(">IIIIII", data[:24])
    pages, commits, offset = [], 0, 32
    while offset + 24 + page_size <= len(data):
        page, commit_size, s1, s2 = struct.unpack(">IIII", data[offset:offset + 16])
        if (s1, s2) != (salt1, salt2):
            break  # frames of an earlier WAL generation
        pages.append(page)
        commits += bool(commit_size)
        offset += 24 + page_size
    owner = dict(sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("SELECT pageno, name FROM dbstat"))
    per_tree = collections.Counter(owner.get(p, "(freed)") for p in pages)
    commits = max(commits, 1)
    print(f"{len(pages)} frames in {commits} commits: {len(pages) / commits:.2f} per commit")
    for name, count in per_tree.most_common():
        print(f"  {name:32s} {count / commits:6.2f} per commit")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
