"""Every job is named by a dotted path (app/queues.py JOBS): a wrong path must fail here, not inside a worker."""
import re
from pathlib import Path

import pytest
from rq.utils import import_attribute

import worker
from app.agents.registry import AGENTS, TEMPLATES
from app.queues import JOBS, launch_task
from app.schedules.sync import SYSTEM_JOBS

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.mark.parametrize("path", sorted(JOBS))
def test_every_declared_job_resolves_as_a_worker_resolves_it(path):
    job = import_attribute(path)  # what RQ does with a job's func_name
    assert callable(job)
    assert f"{job.__module__}.{job.__name__}" == path


@pytest.mark.parametrize("system_job", SYSTEM_JOBS, ids=lambda job: job.id)
def test_every_system_job_is_a_declared_job_that_resolves(system_job):
    assert system_job.func in JOBS, f"{system_job.id}: {system_job.func} is not declared in app/queues.py JOBS"
    assert callable(import_attribute(system_job.func))
    assert system_job.queue in worker.QUEUES


@pytest.mark.parametrize("path", sorted(JOBS))
def test_every_declared_queue_is_one_the_worker_listens_on(path):
    queue = JOBS[path].queue
    assert queue is None or queue in worker.QUEUES


@pytest.mark.parametrize("key", sorted([*AGENTS, *TEMPLATES]))
def test_every_agent_queue_is_one_the_worker_listens_on_and_its_handler_is_warmed_up(key):
    spec = AGENTS.get(key) or TEMPLATES[key]
    assert spec.queue in worker.QUEUES
    assert spec.on_event is not None or spec.run is not None, f"{key} neither handles events nor runs"
    if spec.on_event is not None:
        assert spec.on_event.__module__ in worker.JOB_MODULES
        assert import_attribute(f"{spec.on_event.__module__}.{spec.on_event.__name__}") is spec.on_event


def test_the_worker_warms_up_every_declared_jobs_module():
    assert {spec.module for spec in JOBS.values()} <= set(worker.JOB_MODULES)


def test_an_undeclared_job_is_refused_before_anything_reaches_redis():
    with pytest.raises(ValueError, match="not declared"):
        launch_task("app.agents.jobs.no_such_job", 1)


def _app_modules():
    for path in sorted(APP.rglob("*.py")):
        yield path.relative_to(APP.parent).as_posix(), path.read_text(encoding="utf-8")


def test_nothing_in_app_enqueues_on_a_queue_directly_but_app_queues():
    direct = re.compile(r"\.enqueue(_at|_in|_call)?\(")
    found = [f"{name}:{number}: {line.strip()}" for name, text in _app_modules() if name != "app/queues.py"
             for number, line in enumerate(text.splitlines(), 1) if direct.search(line)]
    assert not found, "enqueue through app.queues.launch_task (declared in JOBS):\n" + "\n".join(found)


def test_nothing_in_app_imports_the_job_functions():
    """The jobs import the services; a service importing the jobs would close the cycle again."""
    imports = re.compile(r"^\s*(from app\.agents\.jobs import|from app\.agents import jobs|import app\.agents\.jobs)")
    found = [f"{name}:{number}" for name, text in _app_modules() if name != "app/agents/jobs.py"
             for number, line in enumerate(text.splitlines(), 1) if imports.search(line)]
    assert not found, found
