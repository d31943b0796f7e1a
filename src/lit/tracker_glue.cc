#include "litseg/lit/tracker_glue.h"

namespace litseg::lit {

sam2::SamHeadObserver MakeSessionObserver(Session& session, OutcomeFn on_outcome) {
  return [&session, on_outcome](const sam2::SamHeadObservation& o) {
    if (o.interaction || o.mask_as_output || !o.pix_feat_with_mem.defined()) return;
    DecoderInputs inputs;
    inputs.image_embed = o.pix_feat_with_mem;
    if (o.high_res) inputs.high_res_features = *o.high_res;
    inputs.sparse = o.sparse_embeddings;
    inputs.dense = o.dense_embeddings;
    inputs.image_pe = o.image_pe;
    BaseResult base;
    base.low_res_logits = o.low_res_masks;
    // The tracker's selected mask: the best multimask output by predicted IoU, or the single one.
    if (o.ious.defined() && o.ious.numel() > 0) base.predicted_iou = o.ious.max().item<double>();
    const FrameOutcome outcome = session.ObserveFrame(o.object_id, o.frame, inputs, base);
    if (on_outcome) on_outcome(o.frame, o.object_id, outcome);
  };
}

Mask AcceptIntoTracker(Session& session, sam2::VideoTracker& tracker, int object_id, int frame) {
  const Mask mask = session.Accept(object_id, frame, tracker.width(), tracker.height());
  tracker.AddMask(frame, object_id, mask);
  return mask;
}

}  // namespace litseg::lit
