"""Webhooks: each configured sink ([notify.NAME]) POSTs the transitions it wants to
an application's endpoint, signed, retried, dead-lettered, in seq order per job."""
