#!/usr/bin/env python3
"""Checks the relative links of README.md and docs/*.md: every linked file exists and every
#anchor names a heading of the linked page (GitHub's rule: lower case, punctuation dropped,
spaces to '-'). Links inside code blocks are not links. Exits 1 listing the broken ones.

    check_links.py REPO_ROOT
"""
import os
import re
import sys

os.chdir(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
def anchors(path):
    out=set()
    for l in open(path, encoding='utf-8'):
        m=re.match(r'^#+\s+(.*)', l)
        if m:
            t=m.group(1).strip().lower()
            t=re.sub(r'[^\w\- ]','',t).replace(' ','-')
            out.add(t)
    return out
bad=0
files=['README.md']+['docs/'+f for f in os.listdir('docs') if f.endswith('.md')]
for f in files:
    text=open(f,encoding='utf-8').read()
    # skip code blocks
    text=re.sub(r'```.*?```','',text,flags=re.S)
    for m in re.finditer(r'\]\(([^)\s]+)\)', text):
        link=m.group(1)
        if link.startswith('http'): continue
        path,_,anchor=link.partition('#')
        target=os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(target):
            print(f, 'missing', link); bad+=1; continue
        if anchor and target.endswith('.md') and anchor not in anchors(target):
            print(f, 'no anchor', link); bad+=1
print(f'{len(files)} pages, {bad} broken links')
sys.exit(1 if bad else 0)
