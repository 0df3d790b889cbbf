"""Packed training: a sweep's jobs that share the network, data set and batch size trained as one program
(``engine``: the stacked, vmapped step; ``run``: each job a normal run)."""
