"""The deployment files: the image's boot step, and the commands the Procfile and compose name."""
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

ENTRYPOINT = ROOT / "scripts" / "docker-entrypoint.sh"


def _boot(command: str, database: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "SCHEMA_WAIT_TRIES": "1", "FLASK_APP": "wsgi.py",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["sh", str(ENTRYPOINT), command], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_worker_and_scheduler_containers_refuse_a_database_that_is_not_migrated(tmp_path):
    for command in ("worker", "scheduler"):
        booted = _boot(command, tmp_path / "empty.db")
        assert booted.returncode == 1, booted.stdout + booted.stderr
        assert "schema is not at the newest migration" in booted.stderr


def test_compose_and_the_procfile_name_the_processes_the_image_knows():
    cases = set(re.findall(r"^  (\w+)\)", ENTRYPOINT.read_text(), re.M))
    assert {"web", "worker", "scheduler"} <= cases
    compose = (ROOT / "docker-compose.yml").read_text()
    for service in ("web", "worker", "scheduler"):
        assert re.search(rf'^  {service}:\n(?:    .*\n)*?    command: \["{service}"\]', compose, re.M), service
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert procfile["worker"].startswith("python worker.py") and procfile["scheduler"] == "flask scheduler run"
    assert "wsgi:app" in procfile["web"]
    # The image's commands run the same programs as the Procfile.
    text = ENTRYPOINT.read_text()
    assert "exec python worker.py" in text and "exec flask scheduler run" in text and "wsgi:app" in text


def test_the_image_installs_the_debian_packages_make_install_does():
    """Fonts and the harfbuzz subsetter decide how the PDFs look and how fast they render: the image
    and a machine set up by `make install` must have the same ones."""
    makefile = (ROOT / "Makefile").read_text()
    wanted = set(re.search(r"^SYSTEM_LIBS := (.+)$", makefile, re.M).group(1).split())
    dockerfile = (ROOT / "Dockerfile").read_text()
    installed = set(re.search(r"apt-get install -y --no-install-recommends ([^\\\n]+)", dockerfile).group(1).split())
    assert {"fonts-liberation", "libharfbuzz-subset0"} <= wanted
    assert wanted <= installed, f"the Dockerfile does not install {sorted(wanted - installed)}"


def test_compose_refuses_to_start_without_a_secret_key_or_a_mail_server():
    """`docker compose up` without SECRET_KEY once started production with a key printed here."""
    compose = (ROOT / "docker-compose.yml").read_text()
    assert re.search(r"^    SECRET_KEY: \$\{SECRET_KEY:\?[^}]+\}$", compose, re.M)
    assert re.search(r"^    MAIL_SERVER: \$\{MAIL_SERVER:\?[^}]+\}$", compose, re.M)
    assert "change-me" not in compose
    # The development mail sink is only started with the dev profile.
    assert re.search(r"^  mail:\n(?:    .*\n)*?    profiles: \[dev\]", compose, re.M)
