"""The data model, one module per domain. Import from here: `from app.models import Invoice`."""
from app.models.accounts import EntityRole, Invitation, RecoveryCode, User
from app.models.agents import (AgentDefinition, AgentRun, AgentVersion, OrchestrationRule, ScheduledJob, ScheduleFire,
                               WebhookDelivery)
from app.models.audit import AuditEntry
from app.models.chain import AuditChain, ChainEntry, ChainVerification
from app.models.banking import BankEntry, BankStatement
from app.models.contracts import Contract, ContractLine
from app.models.dunning import DunningNotice, DunningNoticeItem
from app.models.delivery import InvoiceDelivery, InvoiceDocument
from app.models.events import Event, EventHandling
from app.models.invoices import Invoice, InvoiceLine, InvoiceSequence
from app.models.parties import Customer, LegalEntity
from app.models.receivables import DailySales, OpenBalance
from app.models.payments import Collection, CustomerCredit, Payment, SepaBatch, SepaBatchItem
from app.models.runs import BillingRun, BillingRunChunk, BillingRunItem
from app.models.taxes import TaxCode

__all__ = [
    "DailySales",
    "OpenBalance",
    "EntityRole",
    "Invitation",
    "RecoveryCode",
    "BankEntry",
    "BankStatement",
    "Collection",
    "CustomerCredit",
    "DunningNotice",
    "DunningNoticeItem",
    "InvoiceDelivery",
    "InvoiceDocument",
    "OrchestrationRule",
    "Payment",
    "SepaBatch",
    "SepaBatchItem",
    "AgentDefinition",
    "AgentRun",
    "AgentVersion",
    "WebhookDelivery",
    "AuditEntry",
    "AuditChain",
    "ChainEntry",
    "ChainVerification",
    "BillingRun",
    "BillingRunChunk",
    "BillingRunItem",
    "Contract",
    "ContractLine",
    "Customer",
    "Event",
    "EventHandling",
    "Invoice",
    "InvoiceLine",
    "InvoiceSequence",
    "LegalEntity",
    "ScheduleFire",
    "ScheduledJob",
    "TaxCode",
    "User",
]
