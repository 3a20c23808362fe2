import sys

from kubeproof.kind.clusters import main

sys.exit(main(sys.argv[1:]))
