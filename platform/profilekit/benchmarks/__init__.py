"""`profilekit bench`: measurements that print `name: value` lines (scale.py: profiles one machine holds
and serves; peers.py: profilekit against HF PEFT and the `adapters` library)."""
