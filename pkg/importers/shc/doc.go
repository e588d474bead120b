// Package shc imports SMART Health Cards (format "shc"): the
// ".smart-health-card" JSON file {"verifiableCredential": [JWS, ...]}, bare
// compact JWS text, the "shc:/" numeric text a QR code holds (one chunk, or
// every chunk "shc:/C/N/..." of a split card, one per line), and an
// unsigned JWS payload {"iss", "nbf", "vc"}.
//
// The package guarantees:
//   - a card's FHIR Bundle (vc.credentialSubject.fhirBundle) is imported
//     entry by entry through fhir.ImportBundle: its "resource:N"
//     references are rewritten to "Type/id", every resource gets a stable
//     id derived from the card's content, and Provenance.System is the
//     card's issuer (iss);
//   - signatures are ES256 over the JWS. When issuer keys are given
//     (Options "issuer-keys": a path to a JWKS file, or "issuer-jwks": the
//     JWKS JSON), every card must carry a kid found among them and a valid
//     signature, and its records are marked Provenance.Verified; a card
//     that fails is refused with an *importers.ParseError wrapping
//     ErrBadSignature or ErrUnknownKey, and nothing from the file is
//     imported. Without keys, cards are imported with Verified false;
//   - a split QR card is imported only when all its chunks are present
//     (ErrQRChunks otherwise);
//   - input is bounded (MaxFileSize, MaxJWSSize, MaxPayloadSize for the
//     inflated payload, MaxTotalPayloadSize for all of a file's cards,
//     MaxCards, MaxQRChunks, MaxQRDigits, MaxJSONDepth, MaxJWKSSize and
//     MaxJWKSKeys for issuer keys): inflating stops at its limit, so a
//     DEFLATE bomb costs no more, and with issuer keys a payload is
//     inflated only after its signature verifies. Malformed input is an
//     *importers.ParseError naming the file and the card's line or JSON
//     path, never a value from the card, and never a panic.
//
// QR images are not decoded here: package qrimage reads PNG and JPEG
// images and passes their text to this importer.
// Revocation (the issuer's CRL of rid values) and nbf/exp are not checked.
package shc
