/** Turning an uploaded document's bytes into text the chunker understands. */

/** The media types Meridian accepts for documents (API.md, POST /api/documents). */
export const SUPPORTED_MEDIA_TYPES = ['text/plain', 'text/markdown', 'text/html', 'application/json', 'application/pdf'] as const;
export type SupportedMediaType = (typeof SUPPORTED_MEDIA_TYPES)[number];

export interface ExtractedText {
  /** UTF-8 text with `\n` line ends; never empty. */
  text: string;
  /** How to chunk it: `markdown` (headings, tables, fences recognised) or `plain`. */
  format: 'markdown' | 'plain';
  /** A title found in the document itself (HTML `<title>`, PDF metadata), if any. */
  title?: string;
  /** Number of mis-decoded sequences (UTF-8 read as Windows-1252) that were repaired. */
  repairedSequences: number;
}

export interface TextExtractor {
  /**
   * Extracts the text of one document.
   * @param contentType the upload's Content-Type; parameters such as `charset` are honoured
   *   where they matter (`utf-16le`), otherwise UTF-8 is assumed.
   * @throws AppError `unsupported_media_type` for a type outside `SUPPORTED_MEDIA_TYPES`;
   *   `validation_failed` (message = the reason) for bytes that are not a valid document of
   *   their type (corrupt or encrypted PDF, invalid JSON, binary data sent as text) or that
   *   hold no text at all; `payload_too_large` for a document that needs more time, memory
   *   or text than an implementation's limits allow. These are permanent: the indexer marks
   *   the document failed and does not retry. Anything else (`unavailable`) is transient.
   */
  extract(bytes: Uint8Array, contentType: string): Promise<ExtractedText>;
}
