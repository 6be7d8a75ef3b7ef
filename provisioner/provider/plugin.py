"""The plugin process: go-plugin handshake, auto-mTLS and the gRPC server.

Terraform starts the provider 2-3 times per command, so start-up time is
apply time: imports are the minimum (grpc, the generated tfplugin6 stubs,
msgpack), libvirt is imported on first use, and the TLS certificate is
cached so `cryptography` is only imported when a new one must be made.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any, Callable

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
CORE_PROTOCOL_VERSION = 1
APP_PROTOCOL_VERSION = 6
CERT_LIFETIME = 30 * 24 * 3600
CERT_RENEW_MARGIN = 24 * 3600
# After Terraform dies (kill -9), let a running operation finish so the
# hypervisor is left consistent, but not forever.
ORPHAN_DRAIN_TIMEOUT = 3600.0


# The mirror's wrapper points this at a file under the engine's root, so the
# engine writes nothing outside it; unset, every start makes a new certificate.
TLS_CACHE_ENV = "PROVISIONER_TLS_CACHE"


def _new_certificate() -> tuple[bytes, bytes, float]:
    """A self-signed ECDSA certificate for localhost: (cert PEM, key PEM, not-after epoch)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    not_after = now + datetime.timedelta(seconds=CERT_LIFETIME)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HashiCorp")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(not_after)
            # go-plugin trusts exactly this certificate as its root: it must be a CA.
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert_pem, key_pem, not_after.timestamp()


def server_certificate() -> tuple[bytes, bytes]:
    """(cert PEM, key PEM), from the cache file when still valid."""
    cache = os.environ.get(TLS_CACHE_ENV)
    if not cache:
        return _new_certificate()[:2]
    path = Path(cache)
    try:
        cached = json.loads(path.read_text())
        if cached["not_after"] - CERT_RENEW_MARGIN > time.time():
            return cached["cert"].encode(), cached["key"].encode()
    except (OSError, ValueError, KeyError):
        pass  # no usable cache: make a new certificate
    cert_pem, key_pem, not_after = _new_certificate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".provider-tls.")
        with os.fdopen(fd, "w") as f:
            json.dump({"cert": cert_pem.decode(), "key": key_pem.decode(), "not_after": not_after}, f)
        os.replace(tmp, path)  # mkstemp made it 0600: the key stays private
    except OSError:
        pass  # unwritable cache: a fresh certificate per start still works
    return cert_pem, key_pem


def _pem_to_der_b64(cert_pem: bytes) -> str:
    body = b"".join(line for line in cert_pem.splitlines() if line and not line.startswith(b"-----"))
    return base64.b64encode(base64.b64decode(body)).decode().rstrip("=")


def grpc_environment() -> None:
    """Settings gRPC's C core reads once, at import: call before anything imports grpc."""
    # gRPC's C core logs TLS chatter at INFO to stderr, i.e. into Terraform's log.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    # libvirt forks to run `ssh` for qemu+ssh:// URIs. grpcio enables gRPC's fork handlers by default;
    # in that child, before it execs ssh, they sometimes kill it ("Epoll1Poller ... epoll_wait error:
    # Bad file descriptor"), and the connection fails at random (tests/test_sshvirt.py). This process
    # never uses gRPC in a forked child, which is all fork support is for.
    os.environ["GRPC_ENABLE_FORK_SUPPORT"] = "false"


def grpc_server(servicer: Any, on_shutdown: Callable[[], None], workers: int = 16) -> Any:
    """A gRPC server (not started, no port yet) with go-plugin's services around `servicer`.

    `on_shutdown` runs when the client asks the plugin to exit (GRPCController.Shutdown).
    """
    grpc_environment()
    import grpc
    from tf.gen import grpc_controller_pb2 as controller_pb
    from tf.gen import grpc_controller_pb2_grpc as controller_rpc
    from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
    from tf.gen import tfplugin_pb2_grpc as rpc

    class Controller(controller_rpc.GRPCControllerServicer):
        def Shutdown(self, request, context):
            on_shutdown()
            return controller_pb.Empty()

    class Stdio(stdio_rpc.GRPCStdioServicer):
        def StreamStdio(self, request, context):
            return iter(())  # we log to stderr, which go-plugin already captures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    rpc.add_ProviderServicer_to_server(servicer, server)
    controller_rpc.add_GRPCControllerServicer_to_server(Controller(), server)
    stdio_rpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    return server


def serve() -> None:
    """Run the provider until Terraform shuts it down (or dies)."""
    started = time.monotonic()
    grpc_environment()  # the servicer imports grpc
    from .servicer import ProviderServicer

    shutdown = threading.Event()
    servicer = ProviderServicer()
    server = grpc_server(servicer, shutdown.set)
    import grpc

    sock_dir = tempfile.mkdtemp(prefix="tf-libvirt-")
    sock = os.path.join(sock_dir, "plugin.sock")
    cert_pem, key_pem = server_certificate()
    # Terraform's client certificate (PLUGIN_CLIENT_CERT) is ECDSA P-521,
    # which gRPC's BoringSSL does not offer to verify, so Go would send no
    # certificate at all: client auth cannot be required. The socket lives in
    # a 0700 directory (mkdtemp), so only this user can reach it anyway.
    creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], require_client_auth=False)
    server.add_secure_port(f"unix://{sock}", creds)
    server.start()

    parent = os.getppid()
    sys.stdout.write(f"{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|unix|{sock}|grpc|"
                     f"{_pem_to_der_b64(cert_pem)}\n")
    sys.stdout.flush()
    if os.environ.get("PROVISIONER_PROVIDER_TIMING") == "1":
        print(f"provider ready in {time.monotonic() - started:.3f}s", file=sys.stderr)

    while not shutdown.wait(0.2):
        if os.getppid() != parent:  # Terraform is gone: finish, then leave
            servicer.inflight.wait_idle(ORPHAN_DRAIN_TIMEOUT)
            break
    servicer.inflight.wait_idle(30.0)
    server.stop(0.2).wait(1.0)
    # gRPC may already have unlinked the socket on stop: remove the directory whatever is left in it.
    shutil.rmtree(sock_dir, ignore_errors=True)
    # Skip interpreter teardown (thread pool joins, module finalisers):
    # go-plugin kills a provider that does not exit within 2 s.
    sys.stderr.flush()
    os._exit(0)


def main() -> None:
    """Entry point: refuse politely when not started by Terraform."""
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print("This is the libvirt provider for Terraform (dmacvicar/libvirt 0.9.7 subset).\n"
              "It is started by terraform; install it with provisioner.provider.mirror.install_mirror().",
              file=sys.stderr)
        sys.exit(1)
    serve()
