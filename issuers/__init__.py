"""What a retail partner owns: programs, stores, beacons, members, terminals (and, later,
offers, campaigns and coupons)."""
