"""The contract manufacturer and the customer: signed shipment manifests and the outbox.

* :mod:`~trayline.outbox.signing` — Ed25519 site keys (0600 private key files) and key ids;
* :mod:`~trayline.outbox.canonical` — the one byte form that is signed and written;
* :mod:`~trayline.outbox.manifest` — building a shipment manifest at the CM and checking one
  at the customer (pure: bytes in, a verdict out);
* :mod:`~trayline.outbox.importing` — importing a checked manifest into the customer's store;
* :mod:`~trayline.outbox.webhook` and :mod:`~trayline.outbox.sender` — delivering each
  completed unit to the customer's own system, at least once, in order per unit;
* :mod:`~trayline.outbox.exports` — units, measurements and events as CSV or JSON.
"""
