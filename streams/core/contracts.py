"""The input contracts (schemas/v1) as msgspec Structs: one compiled pass from bytes to a typed,
checked document, several times cheaper than json.loads + a schema check.

The JSON schemas stay the contract; these structs restate them (tests/core/test_compiled_decoding.py
holds every required field, enum, bound, length and pattern of the two side by side). What a
struct cannot say is checked in ``_holds``: money (decoded as the literal's Decimal, see
money.py) is a non-bool number within its bounds, and an interaction carries its kind's score.

``read`` answers a checked document, or None whenever msgspec refuses or is unsure; the caller
then takes the json.loads + jsonschema path, which gives the dead-letter reason and message.
So a refusal here never decides anything by itself, and every decision stays the reference's.
``from_checked`` gives a document the reference path checked the same typed form, so the
semantic checks that follow (validation._semantic) are one code for both.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, Union

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

MAX_MONEY = 10_000_000
_CENT = Decimal("0.01")
_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"

Id = Annotated[str, Meta(min_length=1, max_length=128)]
EventTime = Annotated[str, Meta(max_length=40, pattern=_TIME_PATTERN)]
Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$")]
Money = Any  # the Decimal (or int) of the literal; type and bounds are checked in _holds
OrderChannel = Literal["web", "app", "store", "phone", "marketplace", "sales_rep"]
InteractionKind = Literal["service_contact", "complaint", "nps", "ces", "referral", "review"]
InteractionChannel = Literal["phone", "email", "chat", "store", "web", "social"]
ProfileKind = Literal["signup", "update"]
AcquisitionChannel = Literal["organic", "search", "social", "affiliate", "referral", "email", "offline", "sales"]


class _Document(Struct, frozen=True, forbid_unknown_fields=True):
    """Absent optional fields are UNSET, so that null stays a wrong type, as in the schemas."""


class _Event(_Document, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    schema_version: Literal[1]
    event_id: Id
    event_time: EventTime
    customer_id: Id


class OrderItem(_Document, frozen=True, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(min_length=1, max_length=64)]
    quantity: Annotated[int, Meta(ge=1, le=100_000)]
    unit_price: Money
    category: Union[Annotated[str, Meta(max_length=64)], UnsetType] = UNSET


class OrderDocument(_Event, frozen=True, forbid_unknown_fields=True, tag="order"):
    order_id: Id
    amount: Money
    currency: Currency
    cost_of_goods: Money = UNSET
    service_cost: Money = UNSET
    logistics_cost: Money = UNSET
    channel: Union[OrderChannel, UnsetType] = UNSET
    items: Union[Annotated[list[OrderItem], Meta(max_length=500)], UnsetType] = UNSET


class RefundDocument(_Event, frozen=True, forbid_unknown_fields=True, tag="refund"):
    order_id: Id
    amount: Money
    currency: Currency
    restocked_cost: Money = UNSET
    reason: Union[Annotated[str, Meta(max_length=200)], UnsetType] = UNSET


class InteractionDocument(_Event, frozen=True, forbid_unknown_fields=True, tag="interaction"):
    kind: InteractionKind
    channel: Union[InteractionChannel, UnsetType] = UNSET
    nps_score: Union[Annotated[int, Meta(ge=0, le=10)], UnsetType] = UNSET
    effort_score: Union[Annotated[int, Meta(ge=1, le=7)], UnsetType] = UNSET
    rating: Union[Annotated[int, Meta(ge=1, le=5)], UnsetType] = UNSET
    referred_customer_id: Union[Id, UnsetType] = UNSET


class CustomerAttributes(_Document, frozen=True, forbid_unknown_fields=True):
    reference_customer: Union[bool, UnsetType] = UNSET
    strategic_account: Union[bool, UnsetType] = UNSET
    big_name: Union[bool, UnsetType] = UNSET
    ideal_customer_fit: Union[Annotated[int, Meta(ge=1, le=4)], UnsetType] = UNSET


class CustomerDocument(_Event, frozen=True, forbid_unknown_fields=True, tag="customer"):
    kind: ProfileKind
    acquisition_channel: Union[AcquisitionChannel, UnsetType] = UNSET
    acquisition_cost: Money = UNSET
    currency: Union[Currency, UnsetType] = UNSET
    attributes: Union[CustomerAttributes, UnsetType] = UNSET


Document = Union[OrderDocument, RefundDocument, InteractionDocument, CustomerDocument]
CONTRACTS = {"order": OrderDocument, "refund": RefundDocument, "interaction": InteractionDocument,
             "customer": CustomerDocument}
# money per contract, with whether zero is allowed (a refund's amount is exclusiveMinimum 0)
_MONEY = {
    OrderDocument: (("amount", True), ("cost_of_goods", True), ("service_cost", True), ("logistics_cost", True)),
    RefundDocument: (("amount", False), ("restocked_cost", True)),
    InteractionDocument: (),
    CustomerDocument: (("acquisition_cost", True),),
}
_SCORE_REQUIRED_BY_KIND = {"nps": "nps_score", "ces": "effort_score", "review": "rating"}
# Python's json decodes an escaped surrogate, and the reference path checks that it is half of a
# valid pair; msgspec refuses unpaired ones, but such input is rare enough to leave to the reference.
_ESCAPED_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]")

# float_hook: JSON numbers with a fraction or exponent arrive in untyped (money) fields as the
# Decimal of their literal, so "123456.789" stays 123456.789 and 2-decimal checks are exact.
_DECODER = msgspec.json.Decoder(Document, float_hook=Decimal)


def read(raw: Union[bytes, bytearray, str]) -> Optional[Document]:
    """A document that meets its contract, money as the Decimal of its literal; or None (then
    ask the reference path why not)."""
    raw_bytes = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    # an escape needs a backslash: most payloads have none, and a byte search is cheaper than the pattern
    if b"\\" in raw_bytes and _ESCAPED_SURROGATE.search(raw_bytes):
        return None
    try:
        doc = _DECODER.decode(raw)
    # ValidationError is a DecodeError; Decimal() raises InvalidOperation, an ArithmeticError, on an
    # exponent beyond its range (1e-99999999999999999999), which the schema path reads instead
    except (msgspec.DecodeError, RecursionError, ArithmeticError):
        return None
    return doc if _holds(doc) else None


def from_checked(doc: dict) -> Document:
    """A dict that the schema path has checked, as its Struct, so one set of semantic checks serves
    both paths. Not validated again (Struct constructors do not check types): values stay as
    json.loads read them, so the schema path decides as it always did."""
    fields = {name: value for name, value in doc.items() if name != "type"}
    attributes = fields.get("attributes")
    if attributes is not None:
        fields["attributes"] = CustomerAttributes(**attributes)
    return CONTRACTS[doc["type"]](**fields)


def _is_money(value: Any, zero_allowed: bool) -> bool:
    kind = value.__class__
    if kind is not int and kind is not Decimal:  # bool, str, a float too large for int, a list...
        return False
    # Comparisons of an int or a finite Decimal with these are exact. Where zero is not allowed,
    # below one cent goes to the schema path: no such amount is valid (not whole cents), and the
    # schema judges the float json.loads reads, which is 0 for 1e-999 (out of range, not inexact).
    return (0 <= value if zero_allowed else _CENT <= value) and value <= MAX_MONEY and \
        (kind is int or value.is_finite())


def _holds(doc: Document) -> bool:
    for field, zero_allowed in _MONEY[doc.__class__]:
        value = getattr(doc, field)
        if value is not UNSET and not _is_money(value, zero_allowed):
            return False
    if doc.__class__ is OrderDocument and doc.items is not UNSET:
        if not all(_is_money(item.unit_price, True) for item in doc.items):
            return False
    if doc.__class__ is InteractionDocument:
        score = _SCORE_REQUIRED_BY_KIND.get(doc.kind)
        if score is not None and getattr(doc, score) is UNSET:
            return False
    return True
