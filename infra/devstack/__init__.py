"""streamrec on one machine: the embedded broker and Redis that ``streamrec stack`` runs, free
local ports, and stage processes in a private namespace (the demo, benchmarks and tests)."""
