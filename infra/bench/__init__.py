"""The benchmarks of ``streamrec bench``: each stage beside a bare baseline in the same run."""
