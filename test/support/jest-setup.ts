// Integration and end-to-end tests start real processes and containers.
jest.setTimeout(180_000);
