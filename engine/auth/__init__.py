"""Who sent a frame: signature recovery, freshness of the signed message, the owner allow-list."""
