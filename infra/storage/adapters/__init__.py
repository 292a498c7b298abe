"""The storage adapters: Redis, Kafka and files behind the ports. Only
:mod:`streamrec.infra.storage` and the composition root import them."""
