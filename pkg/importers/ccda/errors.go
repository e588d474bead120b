package ccda

import "errors"

// Sentinel errors. The Err of every *importers.ParseError and
// *importers.ItemError this package reports wraps one of them; callers
// branch with errors.Is. Messages name lines, element paths and fields,
// never values from the file.
var (
	// ErrInvalidXML means the bytes are not well-formed XML.
	ErrInvalidXML = errors.New("invalid XML")
	// ErrTruncated means the file ends inside an element.
	ErrTruncated = errors.New("file ends in the middle of the document (truncated?)")
	// ErrNotCCDA means the XML is well-formed but its root is not a
	// ClinicalDocument in the urn:hl7-org:v3 namespace.
	ErrNotCCDA = errors.New("not a C-CDA document (root is not ClinicalDocument in urn:hl7-org:v3)")
	// ErrDTD means the document has a <!DOCTYPE>. C-CDA has no DTD, and
	// phr reads none.
	ErrDTD = errors.New("DOCTYPE declarations are not accepted")
	// ErrEntity means the document declares entities (<!ENTITY>).
	ErrEntity = errors.New("entity declarations (<!ENTITY>) are not accepted")
	// ErrCharset means the XML declaration names an encoding phr does not
	// read (UTF-8, US-ASCII, ISO-8859-1 and windows-1252 are read).
	ErrCharset = errors.New("unsupported character encoding")
	// ErrTooLarge means the file exceeds MaxFileSize or has more than
	// MaxElements elements.
	ErrTooLarge = errors.New("too large")
	// ErrTooDeep means elements nest deeper than MaxDepth.
	ErrTooDeep = errors.New("elements nested too deeply")
	// ErrEmbedded means a nonXMLBody's embedded document cannot be
	// decoded (bad base64 or compression).
	ErrEmbedded = errors.New("embedded document cannot be decoded")
	// ErrResource means a mapped entry could not be made into a record
	// (an internal inconsistency; reported per entry).
	ErrResource = errors.New("entry could not be mapped")
)

// Limits on what is read.
const (
	// MaxFileSize is the largest C-CDA file phr reads: 24 MiB. The whole
	// document is kept base64-encoded in its DocumentReference (and, for a
	// nonXMLBody, the decoded embedded file too), and this keeps that one
	// resource under the 64 MiB every phr importer accepts.
	MaxFileSize = 24 << 20
	// MaxDepth is how deep elements may nest.
	MaxDepth = 256
	// MaxElements is the most elements one document may have.
	MaxElements = 1 << 20
	// maxText caps narrative text taken for one field.
	maxText = 64 << 10
	// maxDepth bounds recursion over the tree (equal to MaxDepth).
	maxDepth = MaxDepth
)
