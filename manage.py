#!/usr/bin/env python
from recordroom.cli import main

if __name__ == "__main__":
    main()
