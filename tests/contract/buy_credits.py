"""A platform's Python backend, written against the client openapi-python-client generates from Purser's OpenAPI
document: it reads the catalogue, buys a package with a sandbox test card, and checks the credits arrived. scripts/test
runs it against a running service (PURSER_URL, with a client token in PURSER_TOKEN); it fails on any answer the
generated client cannot parse into the type the document promises."""
import os
import sys
import uuid

from purser_client import AuthenticatedClient, Client
from purser_client.api.catalogue import balance, list_packages
from purser_client.api.payments import confirm_payment, create_intent, get_transaction
from purser_client.models import (
    BalanceResponse200,
    ConfirmPaymentResponse200,
    ConfirmRequest,
    ConfirmRequestPackageId,
    CreateIntentResponse200,
    ErrorEnvelope,
    GetTransactionResponse200,
    IntentRequest,
    IntentRequestPackageId,
    ListPackagesResponse200,
)


def expect(answer, kind):
    assert isinstance(answer, kind), f"expected {kind.__name__}, got {answer!r}"
    return answer.data


def main() -> None:
    base = os.environ["PURSER_URL"]
    client = AuthenticatedClient(base_url=base, token=os.environ["PURSER_TOKEN"], raise_on_unexpected_status=True)

    packages = expect(list_packages.sync(client=Client(base_url=base)), ListPackagesResponse200)
    package = next(p for p in packages if p.id == "starter-25")
    before = expect(balance.sync(client=client), BalanceResponse200).balance

    body = IntentRequest(package_id=IntentRequestPackageId(package.id), payment_method_id="pm_card_visa")
    intent = expect(create_intent.sync(client=client, body=body, idempotency_key=str(uuid.uuid4())),
                    CreateIntentResponse200)
    assert intent.amount == package.amount and intent.currency.lower() == package.currency.lower(), intent

    confirm = ConfirmRequest(package_id=ConfirmRequestPackageId(package.id), payment_intent_id=intent.payment_intent_id)
    paid = expect(confirm_payment.sync(client=client, body=confirm, idempotency_key=str(uuid.uuid4())),
                  ConfirmPaymentResponse200)
    assert paid.status == "succeeded", paid
    assert paid.credits_added == package.credits_, paid
    assert paid.new_balance == before + package.credits_, paid

    after = expect(balance.sync(client=client), BalanceResponse200).balance
    assert after == before + package.credits_, (before, after)
    transaction = expect(get_transaction.sync(transaction_id=intent.transaction_id, client=client),
                         GetTransactionResponse200)
    assert transaction.status == "succeeded", transaction

    # An error comes in the envelope the document describes, parsed as its ErrorEnvelope.
    missing = get_transaction.sync(transaction_id=uuid.uuid4(), client=client)
    assert isinstance(missing, ErrorEnvelope) and missing.error.code == "transaction_not_found", missing

    print(f"generated client: bought {package.id}, balance {before} -> {after}")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        sys.exit(f"generated client: {failure}")
