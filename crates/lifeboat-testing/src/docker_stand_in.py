"""A stand-in for the Docker Engine API (v1.53) on a unix socket, for Lifeboat's tests.

It answers the requests Lifeboat sends for docker-volume assets, as Docker documents them:
volumes (inspect, create), containers (list with the volume filter, inspect, stop, start,
pause, unpause). A container is a real process writing a counter into its volume; stopping
kills it, pausing freezes it with SIGSTOP, and the counter it left is logged, so a test can
prove that the snapshot was read while it stood still.

argv: socket path, state file (JSON), log file (one JSON object per line).
"""
import json
import os
import re
import signal
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

SOCKET, STATE, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
with open(STATE) as f:
    state = json.load(f)
lock = threading.Lock()
procs = {}

WRITER = 'i=0; while :; do i=$((i+1)); echo $i > "$1.tmp"; mv "$1.tmp" "$1"; sleep 0.01; done'


def log(entry):
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def counter(c):
    path = c.get("writes")
    if not path:
        return None
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def run(name):
    c = state["containers"][name]
    if c.get("writes"):
        procs[name] = subprocess.Popen(["sh", "-c", WRITER, "sh", c["writes"]])
    c["state"] = "running"


def halt(name):
    p = procs.pop(name, None)
    if p:
        p.send_signal(signal.SIGCONT)
        p.terminate()
        p.wait()
    state["containers"][name]["state"] = "exited"


def volume_json(name):
    return {
        "Name": name,
        "Driver": "local",
        "Mountpoint": state["volumes"][name],
        "Labels": {},
        "Scope": "local",
        "Options": {},
        "CreatedAt": "2026-12-01T10:00:00Z",
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def missing(self, what):
        self.reply(404, {"message": what})

    def handle_any(self, method):
        url = urlparse(self.path)
        path = re.sub(r"^/v[0-9.]+", "", url.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            log({"op": f"{method} {path}"})
            self.route(method, path, query, body)

    def route(self, method, path, query, body):
        vols, ctrs = state["volumes"], state["containers"]
        if method == "GET" and path == "/_ping":
            return self.reply(200, "OK")
        m = re.fullmatch(r"/volumes/([^/]+)", path)
        if method == "GET" and m:
            name = m.group(1)
            if name not in vols:
                return self.missing(f"get {name}: no such volume")
            return self.reply(200, volume_json(name))
        if method == "POST" and path == "/volumes/create":
            name = json.loads(body or b"{}").get("Name")
            mount = os.path.join(state["root"], name, "_data")
            os.makedirs(mount, exist_ok=True)
            vols[name] = mount
            log({"op": "created", "volume": name})
            return self.reply(201, volume_json(name))
        if method == "GET" and path == "/containers/json":
            filters = json.loads(query.get("filters", ["{}"])[0])
            wanted = filters.get("volume", [])
            show_all = query.get("all", ["false"])[0] in ("1", "true")
            out = []
            for name, c in ctrs.items():
                if wanted and not set(wanted) & set(c.get("volumes", [])):
                    continue
                if not show_all and c["state"] != "running":
                    continue
                out.append({"Id": name + "-id", "Names": ["/" + name], "State": c["state"],
                            "Status": c["state"], "Image": "busybox"})
            return self.reply(200, out)
        m = re.fullmatch(r"/containers/([^/]+)(/json|/stop|/start|/pause|/unpause)", path)
        if not m or m.group(1) not in ctrs:
            return self.missing(f"No such container: {m.group(1) if m else path}")
        name, action = m.group(1), m.group(2)
        c = ctrs[name]
        if method == "GET" and action == "/json":
            st = c["state"]
            return self.reply(200, {"Id": name + "-id", "Name": "/" + name, "State": {
                "Status": st, "Running": st in ("running", "paused"), "Paused": st == "paused"}})
        if method != "POST":
            return self.reply(405, {"message": "method not allowed"})
        if action == "/stop":
            if c["state"] == "exited":
                return self.reply(304)
            halt(name)
            log({"op": "stopped", "name": name, "counter": counter(c)})
        elif action == "/start":
            if c["state"] == "running":
                return self.reply(304)
            if c["state"] == "paused":
                return self.reply(409, {"message": f"cannot start a paused container {name}"})
            run(name)
            log({"op": "started", "name": name})
        elif action == "/pause":
            if c["state"] != "running":
                return self.reply(409, {"message": f"container {name} is not running"})
            if name in procs:
                procs[name].send_signal(signal.SIGSTOP)
                time.sleep(0.05)
            c["state"] = "paused"
            log({"op": "paused", "name": name, "counter": counter(c)})
        elif action == "/unpause":
            if c["state"] != "paused":
                return self.reply(409, {"message": f"container {name} is not paused"})
            if name in procs:
                procs[name].send_signal(signal.SIGCONT)
            c["state"] = "running"
            log({"op": "unpaused", "name": name})
        return self.reply(204)

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_HEAD(self):
        self.handle_any("HEAD")


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main():
    for name, c in state["containers"].items():
        c.setdefault("state", "running")
        if c["state"] == "running":
            run(name)
    server = Server(SOCKET, Handler)

    def shutdown(*_):
        for name in list(procs):
            halt(name)
        os._exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    print("ready", flush=True)
    server.serve_forever()


main()
