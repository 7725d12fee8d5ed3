"""Every exception Arbill raises, in one tree.

    ArbillError                      an error a person can act on: str() says what is wrong and what to do
      InvalidInput                   the input cannot be used (a field, a file, a row, an amount)
      Refused                        the input is fine but the state forbids it now (a run already running…)
      NotFound                       what the request names is not there (or not the entity's)
      ExternalFailure                a system outside ours failed or refused (the SMTP server)
      JobFailed                      any error of a job as RQ gets it (app.agents.jobs.ids_only)

A view or command can answer any branch the same way (InvalidInput 422, Refused 409, NotFound 404,
ExternalFailure 502: `http_status`). The classes keep the names and the built-in bases they had in their
modules (a FieldError is still a ValueError, a RunRefused a RuntimeError), and those modules import them
from here, so `from app.billing.runs import RunRefused` still works. This module imports nothing of the app:
every layer may raise these.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:
    from app.documents.validation import Finding


class ArbillError(Exception):
    """An error a person can act on; str() says what is wrong and, where it can, what to do."""

    http_status = 500


# ------------------------------------------------------------------ the branches
class InvalidInput(ArbillError):
    """The input cannot be used. `field_errors` maps a field (or column) to what is wrong with it, where the
    error knows; str() is the whole message either way."""

    http_status = 422

    def __init__(self, *args, field_errors: Mapping[str, str] | None = None):
        super().__init__(*args)
        self.field_errors: dict[str, str] = dict(field_errors or {})


class Refused(ArbillError):
    """The request is understood but the state forbids it now; the message says why and what to do."""

    http_status = 409


class NotFound(ArbillError):
    """What the request names does not exist, or is not the legal entity's."""

    http_status = 404


class ExternalFailure(ArbillError):
    """A system outside ours failed or refused (the SMTP server)."""

    http_status = 502


# ------------------------------------------------------------------ input: fields and records
class FieldError(InvalidInput, ValueError):
    """One field's value is wrong; the message says why."""


class ValidationError(InvalidInput, ValueError):
    """A record cannot be saved; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()), field_errors=errors)
        self.errors = errors


class LocaleInputError(InvalidInput, ValueError):
    """The text cannot be read in the locale; the message says what to write instead."""


class AccountError(InvalidInput, ValueError):
    """A problem with account input a person can act on."""


class ResetLinkError(AccountError):
    """A reset link that cannot be used (expired, used, tampered with): the message says what to do."""


class InvitationLinkError(AccountError):
    """An invitation link that cannot be used: the message says why and what to do."""


class InvitationNotSent(AccountError):
    """The invitation exists but its e-mail did not reach the mail server."""


class ScheduleError(InvalidInput, ValueError):
    """A schedule that cannot be read; the message says what is wrong."""


# ------------------------------------------------------------------ input: files
class NotReadable(InvalidInput):
    """The file cannot be read on as CSV text from this line on; `message` says so, naming the line."""

    def __init__(self, line: int, message: str):
        self.line, self.message = line, message
        super().__init__(message)


class CursorError(InvalidInput, ValueError):
    """A list's page link (`?after=` / `?before=`) cannot be read: str() says why (app/paging.py)."""


class NumberError(InvalidInput, ValueError):
    """A cell that is not a number in this file; str() is the reason, without line and column."""


class ImportFailed(InvalidInput, ValueError):
    """Nothing was imported; `errors` lists what to fix, `count` how many problems there were in all."""

    def __init__(self, errors: list[str], count: int | None = None):
        self.errors = errors
        self.count = len(errors) if count is None else count
        super().__init__(f"{self.count} problem(s); nothing was imported")


class StatementError(InvalidInput, ValueError):
    """The file cannot be read as a statement; `problems` says every reason found, in words for a person."""

    max_problems = 50  # listed in one error; the rest are counted

    def __init__(self, problems: Iterable[str]):
        self.problems: list[str] = list(problems)
        if len(self.problems) > self.max_problems:
            more = len(self.problems) - self.max_problems
            self.problems = self.problems[:self.max_problems] + [f"… and {more:,} more problem(s) after these"]
        super().__init__("; ".join(self.problems))


class BankImportError(InvalidInput, ValueError):
    """A statement that cannot be imported; `problems` lists every reason. Nothing was changed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class OutcomeError(InvalidInput, ValueError):
    """The bank's answer for one debit cannot be recorded; `errors` maps a column to what is wrong."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{column}: {message}" for column, message in errors.items()),
                         field_errors=errors)


class ResultImportFailed(InvalidInput, ValueError):
    """A result file with problems: nothing was recorded; `errors` lists `line N: column: reason`."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s); nothing was recorded")


class NotAnAnswer(InvalidInput, ValueError):
    """The file cannot be read as a bank answer at all; `errors` are `line N: element: reason`."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


# ------------------------------------------------------------------ input: money and invoices
class CurrencyError(InvalidInput, ValueError):
    """A currency code that cannot be used for amounts."""


class LineError(InvalidInput, ValueError):
    """Invoice lines that cannot be billed; ``errors`` lists every problem."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors: list[str] = list(errors)
        super().__init__("; ".join(self.errors))


class CreditSplitError(InvalidInput, ValueError):
    """The amount cannot be written as credit lines; the message names amounts that can."""


class PaymentError(InvalidInput, ValueError):
    """A payment that cannot be recorded; the message says why, `field` which input is at fault."""

    def __init__(self, message: str, field: str = "amount"):
        super().__init__(message, field_errors={field: message})
        self.field = field


class DocumentError(InvalidInput, ValueError):
    """An invoice that cannot be turned into a document; the message says what to fix."""


class EInvoiceInvalid(DocumentError):
    """The generated XML does not validate against the Factur-X EN 16931 schema."""


class EInvoiceRejected(DocumentError):
    """The e-invoice breaks a fatal EN 16931 rule; `findings` lists every finding."""

    def __init__(self, message: str, findings: list[Finding]) -> None:
        super().__init__(message)
        self.findings = findings

    @property
    def fatal(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.fatal]


class MissingGlyph(DocumentError):
    """A character the invoice would print that none of its fonts has."""

    def __init__(self, message: str, character: str, where: str) -> None:
        super().__init__(message)
        self.character, self.where = character, where


# ------------------------------------------------------------------ refused by the state
class RunRefused(Refused, RuntimeError):
    """A run cannot be started; the message says why and what to do."""


class AsOfRefused(RunRefused):
    """The as-of date is after today beyond the cap, or ahead of time without anyone saying so.
    `needs_consent`: it would be accepted if the person says explicitly that they bill ahead of time."""

    def __init__(self, message: str, *, needs_consent: bool = False):
        super().__init__(message)
        self.needs_consent = needs_consent


class AgentRunRefused(Refused, RuntimeError):
    """The agent cannot run for this legal entity now (no runs of its own, disabled, another entity's)."""


class DunningRefused(Refused, ValueError):
    """A dunning run that must not happen (a date after today): nothing was written."""


class ConfirmationRefused(Refused, ValueError):
    """The confirmation does not stand for what would happen now; the message says why."""


class BatchError(Refused, ValueError):
    """A batch cannot be closed or changed; the message says why and what to do."""


class QueueError(Refused, ValueError):
    """An accountant's action on a bank entry that cannot be done; the message says why."""


class DemoAlreadyLoaded(Refused, RuntimeError):
    """The demo data is loaded already (its legal entity or its user exists)."""


class NotActedYet(Refused):
    """Raised by an agent's handler when another job is acting on the event right now (e.g. an e-mail in
    flight): the handling stays pending, and the watchdog looks at it again after the grace period."""


# ------------------------------------------------------------------ not found
class NotInEntity(NotFound, LookupError):
    """A selected id is not an invoice of the legal entity: the request is refused as not found."""


# ------------------------------------------------------------------ outside systems
class MailError(ExternalFailure, RuntimeError):
    """The SMTP server could not be reached or refused the message."""


class DeliveryFailed(ExternalFailure, RuntimeError):
    """Sending failed; raised so that the job is retried. The message carries ids only (it is shown in
    the RQ dashboard and logs); the details are on the delivery and in the audit trail."""


class WebhookFailed(ExternalFailure, RuntimeError):
    """A webhook attempt the receiver did not accept (not 2xx, or no answer): RQ retries the job. Its text names
    ids and the HTTP status only; the answer itself is in the delivery log."""


# ------------------------------------------------------------------ jobs
class JobFailed(ArbillError, RuntimeError):
    """A job's error as RQ gets it: which job failed and the error's type, with its stack, without its text
    (`app.agents.jobs.ids_only` raises it)."""
