/** A dataset as MLflow describes it (a file store's datasets/<id>/meta.yaml, an export's run.json inputs). */
import { z } from 'zod';

export const datasetMetaSchema = z.object({
  name: z.string(),
  digest: z.string(),
  source_type: z.string(),
  source: z.string(),
  schema: z.string().nullish(),
  profile: z.string().nullish(),
});
