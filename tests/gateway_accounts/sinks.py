#!/usr/bin/python3
"""Loopback sinks for the outbox delivery test: a minimal SMTP server and an HTTP webhook.

usage: sinks.py DIR [--sms-fail-first N]
Listens on 127.0.0.1 (ephemeral ports), writes "smtp_port http_port" to DIR/ports once both
listen, stores each SMTP message as DIR/mail-N.eml (envelope in DIR/mail-N.env) and each
webhook POST body as DIR/sms-N.json. The first N webhook POSTs are answered 500 so that the
caller's retry path runs. Exits when its parent closes stdin."""
import os
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

OUT = sys.argv[1]
FAIL_FIRST = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--sms-fail-first" else 0
lock = threading.Lock()
counters = {"mail": 0, "sms": 0, "sms_seen": 0}


def store(kind, data, ext, extra=None):
    with lock:
        counters[kind] += 1
        n = counters[kind]
    base = os.path.join(OUT, "%s-%d" % (kind, n))
    if extra is not None:
        with open(base + ".env.tmp", "w") as f:
            f.write(extra)
        os.rename(base + ".env.tmp", base + ".env")
    with open(base + "." + ext + ".tmp", "wb") as f:
        f.write(data)
    os.rename(base + "." + ext + ".tmp", base + "." + ext)


class Smtp(socketserver.StreamRequestHandler):
    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        self.reply("220 sink ESMTP")
        sender, rcpts = "", []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").strip()
            up = cmd.upper()
            if up.startswith("EHLO"):
                self.wfile.write(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                self.wfile.flush()
            elif up.startswith("HELO"):
                self.reply("250 sink")
            elif up.startswith("MAIL FROM:"):
                sender, rcpts = cmd[10:].strip(), []
                self.reply("250 ok")
            elif up.startswith("RCPT TO:"):
                rcpts.append(cmd[8:].strip())
                self.reply("250 ok")
            elif up == "DATA":
                self.reply("354 go ahead")
                body = bytearray()
                while True:
                    l = self.rfile.readline()
                    if not l or l in (b".\r\n", b".\n"):
                        break
                    if l.startswith(b".."):
                        l = l[1:]
                    body += l
                store("mail", bytes(body), "eml", "from %s\nto %s\n" % (sender, " ".join(rcpts)))
                self.reply("250 queued")
            elif up in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif up == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with lock:
            counters["sms_seen"] += 1
            fail = counters["sms_seen"] <= FAIL_FIRST
        if fail:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        store("sms", body, "json")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class TSmtp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


smtp = TSmtp(("127.0.0.1", 0), Smtp)
http = HTTPServer(("127.0.0.1", 0), Hook)
for srv in (smtp, http):
    threading.Thread(target=srv.serve_forever, daemon=True).start()
with open(os.path.join(OUT, "ports.tmp"), "w") as f:
    f.write("%d %d\n" % (smtp.server_address[1], http.server_address[1]))
os.rename(os.path.join(OUT, "ports.tmp"), os.path.join(OUT, "ports"))
sys.stdin.read()
