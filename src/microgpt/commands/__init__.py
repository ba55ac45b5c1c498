"""
The console scripts, a module each, and what they share (common):

    microgpt-train    microgpt.commands.train   (python -m microgpt)
    microgpt-sample   microgpt.commands.sample  (python -m microgpt.sample)
    microgpt-report   microgpt.commands.report  (python -m microgpt.report)

A console script imports its module before main() can answer a Ctrl-C, so
this package and each command's module import nothing at their top.
"""
