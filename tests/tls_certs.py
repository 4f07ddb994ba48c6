#!/usr/bin/env python3
"""tls_certs.py — test certificates made at run time with the openssl CLI (no fixed keys in the tree).

make_certs(folder) writes, and returns the paths of:
  ca.crt                  a CA (EC P-256)
  server.crt/server.key   signed by it, for localhost and 127.0.0.1
  self.crt/self.key       self-signed, for localhost and 127.0.0.1

Standalone: tls_certs.py FOLDER   (prints the folder once done)
"""
import os
import subprocess
import sys


def _run(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)


def make_certs(folder):
    p = {n: os.path.join(folder, n) for n in
         ("ca.crt", "ca.key", "server.crt", "server.key", "server.csr", "self.crt", "self.key", "ext.cnf")}
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _run("req", "-x509", *ec, "-keyout", p["ca.key"], "-out", p["ca.crt"], "-days", "2",
         "-subj", "/CN=taskport test CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _run("req", "-new", *ec, "-keyout", p["server.key"], "-out", p["server.csr"], "-subj", "/CN=localhost")
    with open(p["ext.cnf"], "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _run("x509", "-req", "-in", p["server.csr"], "-CA", p["ca.crt"], "-CAkey", p["ca.key"],
         "-CAcreateserial", "-days", "2", "-out", p["server.crt"], "-extfile", p["ext.cnf"])
    _run("req", "-x509", *ec, "-keyout", p["self.key"], "-out", p["self.crt"], "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return p


if __name__ == "__main__":
    make_certs(sys.argv[1])
    print(sys.argv[1])
