// Package shlhost is phrd's SMART Health Links share host: the public
// HTTP routes a receiver (any SHL viewer, phrd's own /view page) uses to
// open a link, and the owner-side operations phrd exposes under its
// authenticated /api/v1/shares routes. Shares live in a
// sharestore.Store; the host holds no other state.
//
// # Public routes (Host.Register)
//
//   - POST /shl/{id}: the manifest request {recipient, passcode,
//     embeddedLengthMax} (application/json, at most 8 KiB, parsed
//     strictly). 200 with {"files":[{contentType, embedded|location}]}: a
//     file is embedded when its JWE is no longer than embeddedLengthMax
//     (or, when the request gives none, Options.EmbedMax), else given as
//     a location URL valid at most an hour. 401 {"remainingAttempts": n}
//     for a wrong or missing passcode. 404 with one constant message for
//     an unknown, expired, revoked, used-up or locked link. 400 without a
//     recipient. 429 when two passcode checks of the link are in flight
//     already; the store's key-derivation gate may refuse too.
//   - GET /shl/{id}?recipient=...: the U flag's direct file, as
//     application/jose; 404 for links without U.
//   - GET /shl/{id}/f/{token}: a location URL. The token (in the path,
//     not the query string: it is a capability, like the id) names one
//     file of that share and carries its expiry and an HMAC.
//   - CORS: every answer on these routes allows any origin; preflights
//     (OPTIONS) allow GET, POST and the Content-Type header. Other routes
//     of the server are not touched.
//
// Which refusal it was (expired, revoked, ...) is recorded in the share's
// access log for its owner, never told to the requester.
//
// # Errors
//
// Handlers and methods return typed errors (ErrNotFound,
// *sharestore.PasscodeError, *RequestError, ErrUnsupportedMedia,
// *http.MaxBytesError, ErrBusy, ErrBaseURL); the server that mounts the
// routes answers them from its one error table (phrd: errorStatus in
// pkg/server), as docs/share-protocol.md lists.
//
// # Owner side (plain methods)
//
// CreateShare, ListShares, RevokeShare, UpdateShare and ShareLog take the
// owner's account id from the caller (phrd's session) and the API's bodies
// (pkg/server/api). CreateShare accepts files the client encrypted itself
// (the server never sees the key), or plaintext content it encrypts under
// a fresh key, returning the link once and keeping no key.
//
// The protocol, formats and threat model are in docs/share-protocol.md.
package shlhost
