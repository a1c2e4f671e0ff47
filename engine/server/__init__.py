"""The WebSocket transport: handshake checks, connections and their outboxes, routing by owner.

It knows nothing of workflows: it authenticates frames, hands them to the handler registry, and
delivers events from the bus to the connections of their owner.
"""
