"""Leader election: `Contender` (base.py) with a standalone and a ZooKeeper variant."""
