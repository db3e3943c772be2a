"""SCRAM-SHA-256 server side (RFC 5802 / RFC 7677, MongoDB's SASL framing) for
mongo_responder.py: speculative authentication in the handshake hello, then
saslContinue; plain saslStart/saslContinue too. One user, in the admin database.
Commands other than hello/sasl on an unauthenticated connection get code 13."""
import base64
import hashlib
import hmac
import os

from bson import Binary

ITERATIONS = 15000


def _hmac(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


class Scram:
    OPEN = {"hello", "isMaster", "ismaster", "saslStart", "saslContinue", "ping"}

    def __init__(self, user, password):
        self.user, self.password = user, password
        self.salt = hashlib.sha256(b"salt:" + user.encode()).digest()[:16]
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, ITERATIONS)
        self.stored_key = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
        self.server_key = _hmac(salted, b"Server Key")

    def allowed(self, conn, name):
        return conn.get("authed") or name in self.OPEN

    def hello_fields(self, conn, cmd, doc):
        if "saslSupportedMechs" in cmd:
            doc["saslSupportedMechs"] = ["SCRAM-SHA-256"]
        spec = cmd.get("speculativeAuthenticate")
        if spec and spec.get("mechanism") == "SCRAM-SHA-256":
            reply = self.start(conn, spec)
            if reply.get("ok"):
                reply.pop("ok")
                doc["speculativeAuthenticate"] = reply

    def command(self, conn, name, cmd):
        if name == "saslStart":
            return self.start(conn, cmd)
        return self.cont(conn, cmd)

    def start(self, conn, cmd):
        if cmd.get("mechanism") != "SCRAM-SHA-256":
            return self.fail("Unsupported mechanism")
        first = bytes(cmd["payload"]).decode()
        bare = first.split(",", 2)[2]
        attrs = dict(kv.split("=", 1) for kv in bare.split(","))
        if attrs.get("n") != self.user:
            return self.fail("Authentication failed.")
        nonce = attrs["r"] + base64.b64encode(os.urandom(24)).decode()
        server_first = f"r={nonce},s={base64.b64encode(self.salt).decode()},i={ITERATIONS}"
        conn["scram"] = {"bare": bare, "server_first": server_first, "nonce": nonce}
        return {"conversationId": 1, "done": False,
                "payload": Binary(server_first.encode()), "ok": 1.0}

    def cont(self, conn, cmd):
        st = conn.get("scram")
        if st is None:
            return self.fail("No SASL session state found")
        final = bytes(cmd["payload"]).decode()
        if st.get("verified"):  # the empty last step, when skipEmptyExchange is off
            conn["authed"] = True
            return {"conversationId": 1, "done": True, "payload": Binary(b""), "ok": 1.0}
        without_proof, _, proof = final.rpartition(",p=")
        attrs = dict(kv.split("=", 1) for kv in without_proof.split(","))
        if attrs.get("r") != st["nonce"]:
            return self.fail("Authentication failed.")
        auth_msg = f"{st['bare']},{st['server_first']},{without_proof}".encode()
        sig = _hmac(self.stored_key, auth_msg)
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), sig))
        if hashlib.sha256(client_key).digest() != self.stored_key:
            return self.fail("Authentication failed.")
        st["verified"] = True
        server_sig = base64.b64encode(_hmac(self.server_key, auth_msg)).decode()
        done = True  # as mongod does when the client asked skipEmptyExchange
        conn["authed"] = done
        return {"conversationId": 1, "done": done,
                "payload": Binary(f"v={server_sig}".encode()), "ok": 1.0}

    @staticmethod
    def fail(msg):
        return {"ok": 0.0, "errmsg": msg, "code": 18, "codeName": "AuthenticationFailed"}
