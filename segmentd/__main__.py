from segmentd.cli import main

main()
