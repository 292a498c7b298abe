"""The embedded local stack (Kafka-protocol broker and Redis) that ``streamrec stack`` runs."""
