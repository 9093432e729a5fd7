"""The trainers behind the descriptors: TRL subclasses at module level. Heavy (imports TRL):
only the worker imports these, through a descriptor's trainer factory."""
