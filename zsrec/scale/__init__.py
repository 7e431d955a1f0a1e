"""Scale-out: the batch export and catalog embedding as Spark jobs (`zsrec.scale.spark`; needs the spark extra)."""
