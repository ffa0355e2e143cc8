"""Imported by the forkserver of a rebuilt worker pool, and by nothing else: it makes
the forkserver die with the run that started it (Linux PR_SET_PDEATHSIG).

Workers already die with their parent (`processes.init_worker`); a forkserver's workers
are the forkserver's children, so without this a killed run left the forkserver, its
workers and the resource tracker behind, holding the run's stdout open.
"""

from dicompress.batch.processes import die_with_parent

die_with_parent()
