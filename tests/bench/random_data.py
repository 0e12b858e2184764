"""Incompressible bytes for the benchmark's images and overwrites, fast.

They are the AES-128-CTR keystream of a fresh random key and IV (`openssl enc` over
/dev/zero): about 1.2 GB/s through the pipe here, against 0.27 GB/s for /dev/urandom. urandom
made up about 8 s of every 2 GiB the bench wrote, and it writes many. Every stream has its
own key, so no two streams share a chunk: deduplication sees new data each time, as it would
with urandom.
"""
import os
import subprocess


class RandomStream:
    """Reads return the next n bytes of the stream. Use as a context manager."""

    def __init__(self):
        self.proc = subprocess.Popen(
            ["openssl", "enc", "-aes-128-ctr", "-K", os.urandom(16).hex(), "-iv",
             os.urandom(16).hex(), "-in", "/dev/zero"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def read(self, n):
        data = self.proc.stdout.read(n)
        if len(data) != n:
            raise RuntimeError(f"openssl enc ended after {len(data)} of {n} bytes "
                               f"(exit {self.proc.poll()})")
        return data

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by its pid; it never ends by itself
        self.proc.stdout.close()
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
