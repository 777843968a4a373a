"""The transfer benchmark as an `accelerate launch` entry point (the same code as `hf-ssdd benchmark`).

    accelerate launch recipes/benchmark.py --config recipes/configs/paper/cifar100/benchmark.yaml
"""

import sys

from hf_ssdd.cli import main

if __name__ == "__main__":
    main(["benchmark", *sys.argv[1:]])
