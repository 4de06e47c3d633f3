from recordroom.cli import main

main()
