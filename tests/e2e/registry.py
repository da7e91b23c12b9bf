"""Debian's docker-registry on 127.0.0.1 for pull tests, filled with skopeo."""
import os
import subprocess
import tempfile
import time
import urllib.request

from conftest import free_port, terminate


class LocalRegistry:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kiso-registry-")
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write(f"""version: 0.1
log: {{level: error}}
storage:
  filesystem: {{rootdirectory: {self.dir}/data}}
http:
  addr: {self.address}
""")
        self.log = open(os.path.join(self.dir, "registry.log"), "wb")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)  # Polling with a deadline: the registry is starting.
        self.stop()
        raise RuntimeError("docker-registry did not start")

    def push(self, oci_archive, repository):
        """Copies an OCI archive into the registry as `repository` (name:tag)."""
        subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--quiet",
                        f"oci-archive:{oci_archive}", f"docker://{self.address}/{repository}"],
                       check=True, capture_output=True)

    def stop(self):
        terminate(self.proc)
        self.log.close()
        subprocess.run(["rm", "-rf", self.dir])
