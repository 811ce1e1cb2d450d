"""Run the real ASL under moto's Step Functions interpreter with Step Functions Local's
mock-config test cases (state_machine/test_cases.json).

moto 5.2.5 ships the mock-config engine but never connects it. `MockedStepFunctions`
connects it, in test code only:

1. `StartExecution` with `<stateMachineArn>#<TestCase>` builds the named test case;
2. the execution worker gets it (Environment.mock_test_case);
3. a mocked `codebuild:startBuild.sync` task runs (moto refuses `.sync` on services it
   does not emulate, even when the state is mocked);
4. `SendTaskFailure` keeps its `cause` (moto's response handler drops it, so a Catch
   would see none).

Three changes of semantics: a mocked state's responses are numbered by the state's
invocations in the execution (every attempt, retries included), not by retry count;
Retry intervals are recorded instead of slept; and a task with HeartbeatSeconds sees an
answer sent before its wait began (moto's heartbeat loop would sleep through it until
the next heartbeat; Step Functions takes it).

States a test case does not mock run for real: their Lambda invocations are handed to
the handlers in functions/workflow.py in this process (against moto and the fake
Kubernetes API). Hooks run just before, or just after, a given invocation of a state: the
trainer sending events, a user pressing stop. A `.waitForTaskToken` task runs for real:
its Lambda stores the token, and whatever answers it (SendTaskSuccess/Failure through
moto) ends the wait, also before the wait began.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_unsupported,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    CallbackEndpoint,
    HeartbeatEndpoint,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.mocking.mock_config import (
    MockedResponse,
    MockedResponseReturn,
    MockedResponseThrow,
    MockTestCase,
    StateMockedResponses,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

ROOT = Path(__file__).resolve().parents[2]
TEST_CASES_PATH = ROOT / "state_machine" / "test_cases.json"
STATE_MACHINE_NAME = "Whetstone"

Handler = Callable[[dict[str, Any], object], dict[str, Any]]
Hook = Callable[[], None]


def _parse_range(text: str) -> tuple[int, int]:
    start, _, end = text.partition("-")
    return int(start), int(end or start)


def load_test_case(config: dict[str, Any], machine: str, name: str) -> MockTestCase:
    """A test case of a Step Functions Local mock configuration, as moto's engine wants it."""
    cases = config["StateMachines"][machine]["TestCases"]
    if name not in cases:
        raise KeyError(f"no test case {name!r} for {machine}")
    states = []
    for state, response_name in cases[name].items():
        responses: list[MockedResponse] = []
        for key, raw in config["MockedResponses"][response_name].items():
            start, end = _parse_range(key)
            if "Return" in raw:
                responses.append(MockedResponseReturn(start, end, raw["Return"]))
            else:
                throw = raw["Throw"]
                responses.append(MockedResponseThrow(start, end, throw["Error"], throw["Cause"]))
        states.append(StateMockedResponses(state, response_name, responses))
    return MockTestCase(machine, name, states)


@dataclass
class MockedStepFunctions:
    handlers: dict[str, Handler]
    config: dict[str, Any] = field(default_factory=lambda: json.loads(TEST_CASES_PATH.read_text()))
    visits: Counter[str] = field(default_factory=Counter)
    hooks: dict[tuple[str, int], list[Hook]] = field(default_factory=dict)
    after_hooks: dict[tuple[str, int], list[Hook]] = field(default_factory=dict)
    retry_sleeps: list[float] = field(default_factory=list)
    _cases: dict[str, MockTestCase] = field(default_factory=dict)

    def before(self, state: str, invocation: int, hook: Hook) -> None:
        """Run `hook` just before the `invocation`-th (0-based) invocation of `state`."""
        self.hooks.setdefault((state, invocation), []).append(hook)

    def after(self, state: str, invocation: int, hook: Hook) -> None:
        """Run `hook` just after the `invocation`-th (0-based) invocation of the Lambda named
        `state` returned: the workflow waits on the task token it stored (the trainer
        answering it, a user pressing stop)."""
        self.after_hooks.setdefault((state, invocation), []).append(hook)

    def _visit(self, state: str) -> int:
        index = self.visits[state]
        self.visits[state] += 1
        for hook in self.hooks.get((state, index), []):
            hook()
        return index

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        helper = self
        start_execution = StepFunctionsParserBackend.start_execution
        get_worker = Execution._get_start_execution_worker

        def start_with_test_case(
            backend: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any
        ) -> Any:
            arn, _, case = state_machine_arn.partition("#")
            if case:
                machine = arn.rsplit(":", 1)[-1]
                exec_arn = arn.replace(":stateMachine:", ":execution:") + f":{name}"
                helper._cases[exec_arn] = load_test_case(helper.config, machine, case)
            return start_execution(backend, arn, name, *args, **kwargs)

        def worker_with_test_case(execution: Any) -> Any:
            worker = get_worker(execution)
            worker._mock_test_case = helper._cases.get(execution.exec_arn)
            return worker

        def mocked_response_by_invocation(env: Environment) -> MockedResponse:
            state = env.next_state_name
            assert env.mock_test_case is not None
            responses = env.mock_test_case.state_mocked_responses[state].mocked_responses
            index = helper._visit(state)
            if index >= len(responses):
                raise RuntimeError(f"no mocked response for {state} invocation {index}")
            return responses[index]

        def invoke_in_process(parameters: dict[str, Any], region: str, state_credentials: Any):
            state = str(parameters["FunctionName"]).rsplit(":", 1)[-1]
            raw = parameters.get("Payload") or b"{}"
            payload = json.loads(raw) if isinstance(raw, bytes | str) else raw
            index = helper._visit(state)
            try:
                result = helper.handlers[state](payload, None)
            except Exception as error:  # what the Lambda runtime reports for an escaped error
                failure = {"errorMessage": str(error), "errorType": type(error).__name__}
                return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": failure}
            for hook in helper.after_hooks.get((state, index), []):
                hook()
            return {"StatusCode": 200, "Payload": json.loads(json.dumps(result))}

        class RecordedSleep:
            @staticmethod
            def sleep(seconds: float) -> None:
                helper.retry_sleeps.append(seconds)

        setup_heartbeat = CallbackEndpoint.setup_heartbeat_endpoint

        def heartbeat_seeing_an_early_answer(
            endpoint: CallbackEndpoint, heartbeat_seconds: int
        ) -> HeartbeatEndpoint:
            heartbeat = setup_heartbeat(endpoint, heartbeat_seconds)
            if endpoint.get_outcome() is not None:
                heartbeat.notify()
            return heartbeat

        monkeypatch.setattr(
            CallbackEndpoint, "setup_heartbeat_endpoint", heartbeat_seeing_an_early_answer
        )
        monkeypatch.setattr(StepFunctionsParserBackend, "start_execution", start_with_test_case)
        monkeypatch.setattr(Execution, "_get_start_execution_worker", worker_with_test_case)
        monkeypatch.setattr(
            Environment, "get_current_mocked_response", mocked_response_by_invocation
        )
        monkeypatch.setattr(lambda_eval_utils, "_invoke_lambda_function", invoke_in_process)
        monkeypatch.setattr(
            state_task_service_unsupported.StateTaskServiceUnsupported,
            "_assert_integration_pattern_is_supported",
            lambda self: None,
        )
        monkeypatch.setattr(retrier_decl, "time", RecordedSleep)

        def send_task_failure_with_cause(response: StepFunctionResponse) -> ActionResult:
            response.stepfunction_backend.send_task_failure(
                response._get_param("taskToken"),
                error=response._get_param("error"),
                cause=response._get_param("cause"),
            )
            return EmptyResult()

        monkeypatch.setattr(StepFunctionResponse, "send_task_failure", send_task_failure_with_cause)


@dataclass
class Outcome:
    status: str
    path: list[str]
    error: str | None
    output: dict[str, Any] | None


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every history event of an execution, oldest first."""
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


def wait_for(sfn: Any, execution_arn: str, max_polls: int = 2000) -> Outcome:
    """The finished execution: its status, the states it entered in order, and its output."""
    for _ in range(max_polls):
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            break
        time.sleep(0.005)
    else:
        raise AssertionError(f"{execution_arn} still running")
    path = [
        e["stateEnteredEventDetails"]["name"]
        for e in history(sfn, execution_arn)
        if "stateEnteredEventDetails" in e
    ]
    output = described.get("output")
    return Outcome(
        status=described["status"],
        path=path,
        error=described.get("error"),
        output=json.loads(output) if output else None,
    )
