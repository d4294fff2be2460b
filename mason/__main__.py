from mason.cli import main

main()
