from backrub.cli.main import main

main()
