"""Operations tooling: topic provisioning and checks, offset resets, rebuilds, client security.

Kafka-facing logic lives here (kafka-python admin and clients); ``streams/commands.py``
only parses options and prints.
"""
