// Glue between the video tracker (sam2::VideoTracker) and a live-training Session: an
// observer that hands every propagated (frame, object) to the session (which caches the
// frame's decoder inputs and gates the adapter's suggestion), and "accept" that conditions
// the tracker's memory on an accepted suggestion.
//
//   litseg::lit::Session session(model, {});
//   litseg::sam2::TrackerOptions topt;
//   topt.observer = litseg::lit::MakeSessionObserver(session, [&](int f, int obj, const auto& outcome) {
//     if (outcome.decision == litseg::lit::Decision::kAwaitingReview) pending.push_back({f, obj});
//   });
//   litseg::sam2::VideoTracker tracker(model, std::move(frames), topt);
//   ... tracker.Propagate(); then, for a pending suggestion the user accepts:
//   litseg::lit::AcceptIntoTracker(session, tracker, obj, f);   // tracker.AddMask(accepted)
//   ... or rejects: session.Reject(obj, f); the user corrects; session.SubmitCorrection(obj, f, mask);
//
// Only propagation steps are observed: on a tracked frame the SAM head gets no clicks, which
// is the input the adapter learns from (interaction calls carry the user's clicks, and the
// add-mask path does not run the decoder for the output).
// Thread-safety: the observer runs on the tracker's propagating thread with the tracker's
// lock held; it only calls the session (which locks itself) and `on_outcome`, which must not
// call the tracker. AcceptIntoTracker must not run during a propagation (the tracker throws).
#pragma once

#include <functional>

#include "litseg/lit/session.h"
#include "litseg/sam2/video_tracker.h"

namespace litseg::lit {

using OutcomeFn = std::function<void(int frame, int object_id, const FrameOutcome& outcome)>;

sam2::SamHeadObserver MakeSessionObserver(Session& session, OutcomeFn on_outcome = nullptr);

// The session's pending suggestion of (object, frame) becomes the tracker's mask on that
// frame (a conditioning input, so later frames follow it). Throws litseg::Error without a
// pending suggestion. Returns the accepted mask at video resolution.
Mask AcceptIntoTracker(Session& session, sam2::VideoTracker& tracker, int object_id, int frame);

}  // namespace litseg::lit
