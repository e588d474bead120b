// Package share implements SMART Health Links as specified by the HL7
// "SMART Health Cards and Links" implementation guide, STU1: the link
// payload and its shlink:/ encoding, the compact JWE that every shared file
// is encrypted as, the manifest request and response, and the pieces a
// share store needs (random keys and manifest ids, passcode hashing, QR
// codes).
//
// The package keeps no state, and does no I/O except in Retrieve, the
// receiver's side of the protocol; the daemon (phrd) and the command line
// use it to build and serve links, and to import links others made.
//
// # Links
//
// A link is "shlink:/" followed by the unpadded base64url of a minified
// JSON Payload {url, key, exp, flag, label, v}, optionally prefixed with a
// viewer URL ending in "#" (see ViewerLink). Encode validates the payload
// (Payload.Validate), so a link this package makes always has:
//
//   - an https url of at most 128 printable ASCII characters (plain http
//     only for loopback hosts, for tests);
//   - a key of exactly 43 base64url characters encoding 32 bytes;
//   - an exp in whole seconds, if any;
//   - flags drawn from L, P and U, in alphabetical order, without repeats,
//     and never U together with P;
//   - a label of at most 80 characters with no control characters;
//   - no version other than 1.
//
// Decode applies the same rules to others' links except where the
// specification asks receivers to be lenient: an exp with a fraction or
// an exponent (its type is "number") is read and cut to whole seconds;
// flag letters other than L, P and U are ignored ("SHL Receiver
// Application SHALL ignore flag values they don't recognize"), while the
// known ones keep their rules; a v above 1 decodes, so that the label can
// be shown, and Retrieve refuses it before any request
// (ErrUnsupportedVersion). Decode ignores payload properties it does not
// know, as the specification requires, and reads property names
// case-sensitively. It reads at most MaxLinkLength bytes and MaxJSONDepth
// levels of JSON.
//
// # Files
//
// EncryptFile and DecryptFile implement the only JWE form links use: compact
// serialization, "alg":"dir" (the link key is the AES-256-GCM key),
// "enc":"A256GCM", a "cty" header with the file's content type, and
// optionally "zip":"DEF" (raw DEFLATE, RFC 1951). Every call to EncryptFile
// draws a fresh 96-bit random IV, so one key can encrypt any number of files
// and updates. DecryptFile authenticates the header, IV and ciphertext
// before returning anything, rejects every other algorithm, encryption,
// compression and critical extension, bounds the decompressed size
// (DefaultMaxPlaintext, adjustable with WithMaxPlaintext) so zip bombs are
// refused, refuses a ciphertext too long for that limit before decoding it,
// and never panics on malformed input.
//
// # Manifests
//
// ParseManifest reads a manifest as a receiver gets it, within
// MaxManifestSize, MaxManifestFiles and MaxJSONDepth, and validates it.
// Each file has its own status and fhirVersion (ManifestFile), as in
// STU1's ShlManifest; the manifest itself has none.
//
// # Receiving
//
// Retrieve fetches a link's files as its recipient and decrypts them: a U
// link with one GET, other links through the manifest and its location
// URLs. It refuses expired links, links of a later version and P links
// without a passcode before any request; asks for the manifest once more
// when a location has expired or been consumed (403, 404, 410) or is an
// hour old, as the specification requires; follows redirects only to https (plain http only between
// loopback hosts) without a Referer, bounds what it reads
// (MaxManifestSize, RetrieveOptions.MaxFileSize and MaxTotalSize), and
// decrypts every file before it returns any. NewReceiverClient(true)
// makes a client that connects only to public addresses, for servers
// that fetch links on behalf of their users.
//
// # Secrets
//
// The link key is the whole secret of a share: the server keeps only
// ciphertext, and the key travels in the link (in the URL fragment of a
// viewer link, which browsers do not send to servers). No error from this
// package contains a key, a passcode, a link's url or its label; errors
// name the field and the rule instead. Callers must likewise never log
// links, payloads or ManifestRequest passcodes (ManifestRequest's String
// method redacts the passcode).
//
// Passcodes are stored only as salted scrypt hashes (HashPasscode) with the
// parameters in the hash string, and checked in constant time
// (CheckPasscode). Tests lower the cost with SetPasscodeCostForTesting.
// Passcodes are at most MaxPasscodeLength bytes; longer ones are neither
// hashed nor checked.
//
// # Errors
//
// Every error wraps one of the sentinels ErrInvalidLink, ErrKeySize,
// ErrMalformedJWE, ErrUnsupportedJWE, ErrDecrypt, ErrTooLarge,
// ErrInvalidManifest, ErrInvalidPasscode or ErrQR (Retrieve's also
// ErrLinkExpired, ErrUnsupportedVersion, ErrLinkUnavailable,
// ErrPasscodeRequired, ErrWrongPasscode, ErrServer or ErrPrivateAddress); callers branch with errors.Is. Errors about
// one field or header parameter are *FieldError values (errors.As).
package share
