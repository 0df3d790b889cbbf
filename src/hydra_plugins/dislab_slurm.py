"""``launcher=slurm``'s class. Hydra takes launchers only from the ``hydra_plugins`` namespace
package; the code is ``dislab.sweep.slurm``."""

from dislab.sweep import slurm


class SlurmLauncher(slurm.SlurmLauncher):
    __doc__ = slurm.SlurmLauncher.__doc__
