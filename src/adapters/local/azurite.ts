/**
 * Azurite's published development account key (documented by Microsoft for the emulator; not a
 * secret). devhost gives each Azurite its own account name with this key (AZURITE_ACCOUNTS).
 */
export const AZURITE_DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** Account names of the local stores (API.md "Local runtime"). */
export function azuriteAccountFor(boundary: string): string {
  return `meridian${boundary}`;
}
export const AZURITE_GLOBAL_ACCOUNT = 'meridianglobal';
